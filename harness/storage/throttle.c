/* The throttled storage's server: a read-only FUSE passthrough (libfuse 3) that charges each request its latency.

Built and run by harness.storage.mount (``throttle SOURCE MOUNTPOINT --open-ms ...``), in a process of its
own, never inside the trial. Every open waits open_ms, every read request read_ms (each drawn within
+-jitter_pct), and a bandwidth cap (mb_per_s) is one shared wire: a read of n bytes occupies it for
n / rate, after the reads before it. The kernel asks in requests of at most 128 KiB, so a 50 KB image is
one open and one read; a 1 MB shard is eight reads, of which the kernel keeps up to two in flight (it
reads one request ahead), so a reader waits read_ms at least every second request.

Why C and not Python: at zero latency the server's own work is what a trial through the mount pays
over the local disk. fusepy's callbacks cost ~260 us a request on a 2-core VM (a serial reader through
the mount ran at 0.57 of local); here a request costs a few microseconds.

Requests run in libfuse's threads: a sleep holds no lock, so k readers at once wait their latencies side
by side, as on a network file system. Links are followed (a folder dataset's view of the user's files),
so every byte the trial reads crosses the throttle. Nothing is written. Where reads cost something (read_ms
or a cap) the page cache is not kept between opens, so each epoch reads through the server again; where they
are free it is (see t_open). On unmount (or SIGTERM/SIGINT, which
libfuse turns into an unmount) the last line printed is ``served: {json}``: the requests served and the
CPU they cost, which the parent records. */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static struct {
    int source;                 /* the served folder, opened once: every path is resolved under it */
    double open_s, read_s, byte_s, jitter;
    pthread_mutex_t lock;       /* the counters, the wire and the random draws */
    double wire_free;           /* monotonic time the wire is next free */
    unsigned short seed[3];     /* the jitter's draws: fixed, as the Python servers' Random(0) */
    long opens, reads, bytes;   /* requests served (bytes: as asked; a last read may return fewer) */
    double cpu_at_mount;        /* the serving's own CPU starts at init, after start-up */
} S;

static double now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_s(double seconds) {
    if (seconds <= 0) return;
    struct timespec t = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {}
}

/* seconds, spread uniformly within +-jitter (caller holds the lock) */
static double spread(double seconds) {
    if (seconds <= 0 || S.jitter <= 0) return seconds;
    return seconds * (1 + S.jitter * (2 * erand48(S.seed) - 1));
}

static void on_open(void) {
    pthread_mutex_lock(&S.lock);
    S.opens++;
    double wait = spread(S.open_s);
    pthread_mutex_unlock(&S.lock);
    sleep_s(wait);
}

/* the request's latency, then its turn on the wire: its bytes after those already on it */
static void on_read(size_t size) {
    pthread_mutex_lock(&S.lock);
    S.reads++;
    S.bytes += (long)size;
    double wait = spread(S.read_s);
    pthread_mutex_unlock(&S.lock);
    sleep_s(wait);
    if (S.byte_s <= 0) return;
    pthread_mutex_lock(&S.lock);
    double start = now(CLOCK_MONOTONIC);
    if (S.wire_free > start) start = S.wire_free;
    S.wire_free = start + size * S.byte_s;
    double done = S.wire_free;
    pthread_mutex_unlock(&S.lock);
    sleep_s(done - now(CLOCK_MONOTONIC));
}

static const char *rel(const char *path) { return path[1] ? path + 1 : "."; }

static int t_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    (void)fi;
    if (fstatat(S.source, rel(path), st, 0) == -1) return -errno; /* follows links: a linked file is a file */
    st->st_mode &= ~(S_IWUSR | S_IWGRP | S_IWOTH);                 /* read-only */
    return 0;
}

static int t_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                     enum fuse_readdir_flags flags) {
    (void)offset, (void)fi, (void)flags;
    int fd = openat(S.source, rel(path), O_RDONLY | O_DIRECTORY);
    if (fd == -1) return -errno;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -errno;
    }
    for (struct dirent *e; (e = readdir(dir));) fill(buf, e->d_name, NULL, 0, 0);
    closedir(dir);
    return 0;
}

/* A request the tier charges nothing for is not made to wait on this server, which would add its own round
   trip (what the trial would measure is then the emulator): where reads are free (no read_ms, no cap) the
   kernel keeps the files' pages between opens, so after the first epoch no read reaches the server; where
   opens are free too, open answers ENOSYS once, and the kernel stops sending opens and releases (Linux 4.19+:
   "no_open", which keeps the page cache), so the mount costs a local read's page-cache copy and no more. */
static int free_reads(void) { return S.read_s <= 0 && S.byte_s <= 0; }

static int t_open(const char *path, struct fuse_file_info *fi) {
    if (fi->flags & (O_WRONLY | O_RDWR)) return -EROFS;
    if (free_reads() && S.open_s <= 0) return -ENOSYS;
    on_open();
    int fd = openat(S.source, rel(path), O_RDONLY);
    if (fd == -1) return -errno;
    fi->fh = (uint64_t)fd + 1; /* 0: no open was made (above), the read opens the file itself */
    fi->keep_cache = free_reads();
    return 0;
}

static int t_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
    on_read(size);
    int fd = fi->fh ? (int)fi->fh - 1 : openat(S.source, rel(path), O_RDONLY);
    if (fd == -1) return -errno;
    ssize_t got = pread(fd, buf, size, offset);
    int why = errno;
    if (!fi->fh) close(fd);
    return got == -1 ? -why : (int)got;
}

static int t_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    if (fi->fh) close((int)fi->fh - 1);
    return 0;
}

static int t_statfs(const char *path, struct statvfs *st) {
    (void)path;
    return fstatvfs(S.source, st) == -1 ? -errno : 0;
}

static void *t_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    conn->max_read = 131072; /* libfuse 3 wants the mount option's figure here too */
    /* the kernel reads ahead one request: a reader has at most two in flight (the one it waits on and the next),
       which the report's I/O ceiling assumes (harness.results.bounds.READS_IN_FLIGHT) */
    conn->max_readahead = 131072;
    /* the dataset does not change while mounted: the kernel may keep names and attributes for the mount's
       life, so a file's reading costs its open, reads and release, not a lookup and a stat each time again */
    cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 3600;
    S.cpu_at_mount = now(CLOCK_PROCESS_CPUTIME_ID);
    return NULL;
}

static const struct fuse_operations OPS = {
    .getattr = t_getattr,
    .readdir = t_readdir,
    .open = t_open,
    .read = t_read,
    .release = t_release,
    .statfs = t_statfs,
    .init = t_init,
};

static int usage(const char *why) {
    fprintf(stderr, "usage: throttle SOURCE MOUNTPOINT [--open-ms MS] [--read-ms MS] [--mb-per-s MB] "
                    "[--jitter-pct PCT] [--cpus 0,1]\nthrottle: %s\n", why);
    return 2;
}

static int pin(char *cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (char *c = strtok(cpus, ","); c; c = strtok(NULL, ",")) CPU_SET(atoi(c), &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv) {
    char *places[2] = {NULL, NULL}, *cpus = NULL;
    double open_ms = 0, read_ms = 0, mb_per_s = 0, jitter_pct = 0;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double *into = !strcmp(a, "--open-ms") ? &open_ms : !strcmp(a, "--read-ms") ? &read_ms
                     : !strcmp(a, "--mb-per-s") ? &mb_per_s : !strcmp(a, "--jitter-pct") ? &jitter_pct : NULL;
        if ((into || !strcmp(a, "--cpus")) && i + 1 == argc) return usage("an option without its value");
        if (into) {
            char *end;
            *into = strtod(argv[++i], &end);
            if (*end || *into < 0) return usage("a figure that is not a non-negative number");
        } else if (!strcmp(a, "--cpus")) {
            cpus = argv[++i];
        } else if (a[0] == '-' || n == 2) {
            return usage("an unknown argument");
        } else {
            places[n++] = argv[i];
        }
    }
    if (n != 2) return usage("SOURCE and MOUNTPOINT are needed");
    if (cpus && *cpus && pin(cpus) == -1) return usage("--cpus names a core this process may not use");
    S.source = open(places[0], O_RDONLY | O_DIRECTORY);
    if (S.source == -1) return usage("SOURCE is not a folder that can be read");
    S.open_s = open_ms / 1e3, S.read_s = read_ms / 1e3, S.jitter = jitter_pct / 100;
    S.byte_s = mb_per_s > 0 ? 1 / (mb_per_s * 1e6) : 0;
    pthread_mutex_init(&S.lock, NULL);
    /* read-only, 128 KiB reads (the kernel's largest); in the foreground: the parent owns this process */
    char *fuse_argv[] = {argv[0], "-o", "ro,max_read=131072,fsname=harness-throttle", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
    struct fuse *fuse = fuse_new(&args, &OPS, sizeof OPS, NULL);
    if (!fuse || fuse_mount(fuse, places[1]) != 0) return usage("MOUNTPOINT could not be mounted (see above)");
    struct fuse_session *session = fuse_get_session(fuse);
    fuse_set_signal_handlers(session); /* SIGTERM, SIGINT, SIGHUP: leave the loop, then unmount */
    struct fuse_loop_config *loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(loop, 256); /* one per reader waiting its latency at once */
    setvbuf(stdout, NULL, _IOLBF, 0);
    int rc = fuse_loop_mt(fuse, loop);
    fuse_loop_cfg_destroy(loop);
    fuse_remove_signal_handlers(session);
    fuse_unmount(fuse);
    fuse_destroy(fuse);
    double serving = S.cpu_at_mount > 0 ? now(CLOCK_PROCESS_CPUTIME_ID) - S.cpu_at_mount : -1;
    /* unmounted: the loop has ended; the parent reads this line for the server's cost per request */
    printf("served: {\"opens\": %ld, \"reads\": %ld, \"bytes\": %ld, \"serving_cpu_s\": ", S.opens, S.reads, S.bytes);
    serving >= 0 ? printf("%.6f}\n", serving) : printf("null}\n");
    return rc;
}
