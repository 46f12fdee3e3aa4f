#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Attempts at a fresh temporary name before giving up; a clash needs another writer to pick
 * the same 6 characters in the same directory, so more than one retry is already rare. */
#define TMP_ATTEMPTS 100

static void clear(po_atomic_file *af) {
    free(af->path);
    free(af->tmp_path);
    af->fp = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
}

/* Six name characters from the pid, the clock and a per-process counter. mkstemp would do
 * this too, but it creates the file 0600 whatever the umask, and fixing that up afterwards
 * needs umask(), which is process-wide and racy in a threaded program. */
static void fill_suffix(char *x) {
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = (uint64_t)getpid() * 0x9E3779B97F4A7C15u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                 (atomic_fetch_add(&counter, 1) * 0xBF58476D1CE4E5B9u);
    v ^= v >> 31;
    v *= 0x94D049BB133111EBu;
    v ^= v >> 29;
    for (int i = 0; i < 6; i++) {
        x[i] = chars[v % (sizeof chars - 1)];
        v /= sizeof chars - 1;
    }
}

po_status po_atomic_begin(const char *path, po_atomic_file *af) {
    af->fp = NULL;
    af->path = NULL;
    af->tmp_path = NULL;
    if (!path || !*path) return po_fail(PO_ERR_INVALID_ARG, "atomic write: empty path");
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) return po_fail(PO_ERR_IO, "%s: names a directory, not a file", path);
    size_t dir_len = (size_t)(base - path); /* keeps the trailing slash */
    size_t base_len = strlen(base);
    af->path = strdup(path);
    af->tmp_path = malloc(dir_len + base_len + sizeof "/.tmp.XXXXXX" + 1);
    if (!af->path || !af->tmp_path) {
        clear(af);
        return po_fail(PO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    /* Keep the permissions a user gave the file being replaced (a private checkpoint stays
     * private); a new file gets 0666 minus the umask, applied by open(). */
    struct stat sb;
    int keep_mode = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < TMP_ATTEMPTS && fd < 0; attempt++) {
        char *p = af->tmp_path;
        memcpy(p, path, dir_len);
        p += dir_len;
        *p++ = '.';
        memcpy(p, base, base_len);
        p += base_len;
        memcpy(p, ".tmp.", 5);
        p += 5;
        fill_suffix(p);
        p[6] = '\0';
        fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, keep_mode ? 0600 : 0666);
        err = errno;
        if (fd < 0 && err != EEXIST) break;
    }
    if (fd < 0) {
        po_status st = po_fail(PO_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(err));
        clear(af);
        return st;
    }
    /* Best effort: some file systems (vfat, some network mounts) refuse chmod. */
    if (keep_mode) (void)fchmod(fd, sb.st_mode & 07777);
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        err = errno;
        close(fd);
        unlink(af->tmp_path);
        po_status st = po_fail(PO_ERR_IO, "%s: cannot open a stream on the temporary file: %s", path, strerror(err));
        clear(af);
        return st;
    }
    return PO_OK;
}

po_status po_atomic_write(po_atomic_file *af, const void *data, size_t len) {
    if (len == 0) return PO_OK;
    if (!af->fp) return po_fail(PO_ERR_INVALID_ARG, "atomic write: file is not open");
    if (fwrite(data, 1, len, af->fp) != len)
        return po_fail(PO_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    return PO_OK;
}

/* Without this the rename itself may not survive a crash on ext4/xfs: the new directory entry
 * lives in the directory's blocks. */
static int sync_dir(const char *path, int *err) {
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (!slash) {
        dir = strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) {
        *err = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int rc = fsync(fd);
    *err = errno;
    close(fd);
    /* EINVAL: the file system cannot sync directories; there is nothing more to do. */
    return rc != 0 && *err != EINVAL ? -1 : 0;
}

po_status po_atomic_commit(po_atomic_file *af) {
    if (!af->fp) {
        clear(af);
        return po_fail(PO_ERR_INVALID_ARG, "atomic commit: file is not open");
    }
    FILE *fp = af->fp;
    af->fp = NULL;
    const char *what = NULL;
    int err = 0;
    if (fflush(fp) != 0) {
        what = "writing the temporary file";
        err = errno;
    } else if (ferror(fp)) {
        /* An earlier fwrite or fprintf failed; its errno is long gone. */
        what = "writing the temporary file";
        err = EIO;
    } else if (fsync(fileno(fp)) != 0) {
        what = "syncing the temporary file";
        err = errno;
    }
    if (fclose(fp) != 0 && !what) {
        what = "closing the temporary file";
        err = errno;
    }
    if (!what && rename(af->tmp_path, af->path) != 0) {
        what = "renaming the temporary file into place";
        err = errno;
    }
    if (what) {
        unlink(af->tmp_path);
        po_status st = po_fail(PO_ERR_IO, "%s: %s failed: %s", af->path, what, strerror(err));
        clear(af);
        return st;
    }
    po_status st = PO_OK;
    if (sync_dir(af->path, &err) != 0)
        st = po_fail(PO_ERR_IO, "%s: written, but syncing its directory failed: %s", af->path, strerror(err));
    clear(af);
    return st;
}

void po_atomic_abort(po_atomic_file *af) {
    if (af->fp) {
        fclose(af->fp);
        unlink(af->tmp_path);
    }
    clear(af);
}
