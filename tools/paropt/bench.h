/* paropt bench: the benchmark suite's pieces. cmd_bench.c takes the options and runs the suite;
 * bench_runs.c starts each `paropt train` run as a child process and reads its summary;
 * bench_table.c derives the results table from the runs' summaries (and reads the PyTorch peer
 * file); bench_report.c presents the results as text and as one HTML page.
 *
 * Everything the table and the page show comes from one JSON object, the content of
 * results.json:
 *   format "paropt bench 1", paropt_version, machine {hostname, cpu_model, cores, threads, os,
 *   date}, settings {workloads [{spec, params}], devices [text], quick, steps, warmup,
 *   calibrate, rounds, peer}, runs [{index, round, workload, kind, label, devices, argv, wall_s,
 *   summary}], peer {file, records} (with --peer), table [per workload], duration_s.
 * A run's kind is "baseline", "auto", "energy" or "scaling"; its summary is the child's --json
 * summary as printed; its round counts from 1 (every round runs every configuration once, in the
 * same order). A configuration is a (workload, kind, devices) triple: with several rounds it has
 * one run per round, and the table gives its medians (see bench_table). */
#ifndef PO_BENCH_H
#define PO_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define BENCH_FORMAT "paropt bench 1"

/* Runs argv (argv[0] is the executable's path; NULL-terminated) as a child process with its
 * stdout and stderr captured. On success (exit status 0 and a JSON object as the last line of
 * stdout) stores that object in *summary (owned by the caller) and the run's wall time in
 * seconds, and returns true. Otherwise writes one line saying why into why (the exit status or
 * signal and the child's last line on stderr) and returns false. */
bool bench_run_child(char *const argv[], json_t **summary, double *wall_s, char *why, size_t why_size);

/* Reads a PyTorch peer file: every line that is not blank is a JSON object with "workload"
 * (text), "threads" (integer >= 1) and "ms_per_step" (number > 0), optionally "batch" and
 * "params" (integers), as bench/peer/torch_bench.sh writes. Returns the records as a new array,
 * or NULL after printing one error line naming the file and the line. */
json_t *bench_peer_read(const char *path);

/* The results table (a new array, one object per workload) computed from results' settings,
 * runs and peer records alone. Each configuration's figures are medians over its runs (one per
 * round; the mean of the middle two for an even count): ms_per_step, samples_per_s,
 * energy_j_per_sample, the busy means, predicted_step_ms, measured_step_ms and
 * prediction_error. Every ratio (speed-up, energy change, utilization change, scaling efficiency,
 * paropt against PyTorch) is computed from those medians. Each configuration also records
 * runs (its run indices, by round), ms_per_step_rounds (its ms_per_step in each round) and
 * ms_per_step_spread (max / min - 1 of those); the plan shown (strategy, devices, shares) is
 * the first round's, with strategy_rounds giving each round's strategy. With one round every
 * median is the run's own figure. */
json_t *bench_table(const json_t *results);

/* The energy basis of a comparison between two energy sources: "measured" when both are
 * measured, "estimated" when both are estimated, else "mixed". */
const char *bench_energy_basis(const char *a, const char *b);

/* The table as text for a terminal (stdout). */
void bench_report_text(FILE *f, const json_t *results);

/* The results as one self-contained HTML page: inline CSS and SVG, no script, no external
 * resource, every string escaped. */
void bench_report_html(FILE *f, const json_t *results);

#endif
