/* The run report's sections, one writer each, and the helpers they share. */
#ifndef PO_REPORT_INTERNAL_H
#define PO_REPORT_INTERNAL_H

#include <stdio.h>

#include "report/run_data.h"

/* <section id="id"><h2>title</h2> ... po__section_close. */
void po__section_open(FILE *f, const char *id, const char *title);
void po__section_close(FILE *f);
/* <p class="missing"><strong>Not recorded</strong>: why</p> (why is escaped). */
void po__not_recorded(FILE *f, const char *why_fmt, ...) __attribute__((format(printf, 2, 3)));
/* The source tag written next to an energy or power figure: <span class="source">...</span>. */
void po__source_tag(FILE *f, const char *source);
/* An energy in J, mJ or kJ, e.g. "0.775 mJ". */
const char *po__fmt_energy(char *buf, size_t size, double joules);

void po__section_gantt(FILE *f, const rd_run *r);
void po__section_utilization(FILE *f, const rd_run *r);
void po__section_power(FILE *f, const rd_run *r);
void po__section_loss(FILE *f, const rd_run *r);
void po__section_accuracy(FILE *f, const rd_run *r);

#endif
