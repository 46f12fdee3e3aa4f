/* paropt bench: one `paropt train` run as a child process, its output captured. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Output kept from one stream; stderr keeps only its tail (progress lines can be many). */
typedef struct {
    char *p;
    size_t n, cap, keep; /* keep: 0 = everything, else at most about this many bytes */
} capture;

static bool capture_add(capture *c, const char *s, size_t n) {
    if (c->keep && c->n + n > 2 * c->keep) {
        size_t drop = c->n > c->keep ? c->n - c->keep : 0;
        memmove(c->p, c->p + drop, c->n - drop);
        c->n -= drop;
    }
    if (c->n + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->n + n + 1)
            cap *= 2;
        char *grown = realloc(c->p, cap);
        if (!grown) return false;
        c->p = grown;
        c->cap = cap;
    }
    memcpy(c->p + c->n, s, n);
    c->n += n;
    c->p[c->n] = 0;
    return true;
}

/* The last line of c that is not blank, without its newline (in place; "" when none). */
static const char *last_line(capture *c) {
    if (!c->p) return "";
    size_t end = c->n;
    while (end > 0 && (c->p[end - 1] == '\n' || c->p[end - 1] == '\r' || c->p[end - 1] == ' '))
        end--;
    c->p[end] = 0;
    size_t start = end;
    while (start > 0 && c->p[start - 1] != '\n')
        start--;
    return c->p + start;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Reads both pipes until both are closed. False when memory runs out or poll fails. */
static bool drain(int out_fd, int err_fd, capture *out, capture *err) {
    struct pollfd p[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    capture *dst[2] = {out, err};
    int open = 2;
    bool ok = true;
    char buf[16384];
    while (open > 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(p[i].fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                p[i].fd = -1;
                open--;
            } else if (ok) {
                ok = capture_add(dst[i], buf, (size_t)r); /* keep reading so the child never blocks */
            }
        }
    }
    return ok;
}

bool bench_run_child(char *const argv[], json_t **summary, double *wall_s, char *why, size_t why_size) {
    *summary = NULL;
    int out[2], err[2];
    if (pipe(out) != 0) {
        snprintf(why, why_size, "cannot create a pipe: %s", strerror(errno));
        return false;
    }
    if (pipe(err) != 0) {
        snprintf(why, why_size, "cannot create a pipe: %s", strerror(errno));
        close(out[0]), close(out[1]);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "cannot start a process: %s", strerror(errno));
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        return false;
    }
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        execv(argv[0], argv);
        dprintf(STDERR_FILENO, "paropt: error: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    capture co = {0}, ce = {.keep = 65536};
    bool drained = drain(out[0], err[0], &co, &ce);
    close(out[0]);
    close(err[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *wall_s = now_s() - t0;
    bool ok = false;
    const char *tail = last_line(&ce);
    if (strncmp(tail, "paropt: error: ", 15) == 0) tail += 15;
    if (!drained) {
        snprintf(why, why_size, "out of memory reading its output");
    } else if (WIFSIGNALED(status)) {
        snprintf(why, why_size, "killed by signal %d (%s)%s%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 *tail ? ": " : "", tail);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, why_size, "exit status %d%s%s", WIFEXITED(status) ? WEXITSTATUS(status) : -1, *tail ? ": " : "",
                 tail);
    } else {
        json_error_t je;
        const char *line = last_line(&co);
        json_t *s = json_loads(line, 0, &je);
        if (!json_is_object(s)) {
            snprintf(why, why_size, "its last line of output is not a JSON summary (%s)",
                     s ? "not an object" : je.text);
            json_decref(s);
        } else {
            *summary = s;
            ok = true;
        }
    }
    free(co.p);
    free(ce.p);
    return ok;
}
