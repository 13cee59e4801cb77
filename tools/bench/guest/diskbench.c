/* diskbench.c - in-guest disk benchmark: sequential and random read/write throughput on a block device, with O_DIRECT. */
/*
 * Built statically on the host (gcc -static) and carried into the guest's initramfs by
 * tools/bench/disk-bench.sh.  Usage: diskbench DEVICE SEQ_MIB RANDOM_OPS.  Sequential
 * passes move SEQ_MIB MiB in 1 MiB requests; random passes do RANDOM_OPS 4 KiB requests
 * at offsets drawn from a fixed-seed generator inside the same SEQ_MIB MiB (written
 * first, so sparse formats measure steady state, not allocation).  Writes end with
 * fdatasync, which the device sees as a flush.  Each line printed is
 *   DISKBENCH <test> <seconds> <MiB/s> <IOPS>
 * timed with the guest's monotonic clock.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *test, double secs, uint64_t bytes, uint64_t ops)
{
    printf("DISKBENCH %s %.3f %.2f %.0f\n", test, secs, bytes / 1048576.0 / secs, ops / secs);
    fflush(stdout);
}

static int full_io(int fd, void *buf, size_t len, off_t off, int write_op)
{
    ssize_t n = write_op ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
    if (n != (ssize_t)len) {
        perror(write_op ? "pwrite" : "pread");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: diskbench DEVICE SEQ_MIB RANDOM_OPS\n");
        return 1;
    }
    uint64_t mib = strtoull(argv[2], NULL, 0), ops = strtoull(argv[3], NULL, 0);
    int fd = open(argv[1], O_RDWR | O_DIRECT);
    if (fd < 0 || mib == 0) {
        perror(argv[1]);
        return 1;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20))
        return 1;
    memset(buf, 0xa5, 1 << 20);
    double t = now();
    for (uint64_t i = 0; i < mib; i++)
        if (full_io(fd, buf, 1 << 20, (off_t)(i << 20), 1))
            return 1;
    fdatasync(fd);
    report("seq-write", now() - t, mib << 20, mib);
    t = now();
    for (uint64_t i = 0; i < mib; i++)
        if (full_io(fd, buf, 1 << 20, (off_t)(i << 20), 0))
            return 1;
    report("seq-read", now() - t, mib << 20, mib);
    uint64_t blocks = (mib << 20) / 4096, x = 88172645463325252ull;
    for (int pass = 0; pass < 2; pass++) {
        t = now();
        for (uint64_t i = 0; i < ops; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (full_io(fd, buf, 4096, (off_t)((x % blocks) * 4096), pass == 0))
                return 1;
        }
        if (pass == 0)
            fdatasync(fd);
        report(pass == 0 ? "rand-write" : "rand-read", now() - t, ops * 4096, ops);
    }
    close(fd);
    return 0;
}
