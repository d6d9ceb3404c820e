/*
 * big.c -- benchmark workload for stasis: SIZE_MIB of incompressible memory.
 *
 * Usage: big DIR SIZE_MIB      (DIR is unused)
 *
 * mmaps SIZE_MIB MiB of private anon memory (MAP_POPULATE) and fills it with a xorshift64*
 * stream (8 bytes at a time; incompressible), prints "ready <pid>\n", and
 * on SIGTERM regenerates the stream and compares every word ->
 * "PASS\n" (0) or "FAIL: <first mismatch>\n" (1). Fill/verify times go to
 * stderr.
 * Build: gcc -O1 -g -o big big.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void out(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= w;
	}
}

#define FAIL(...) do { out("FAIL: " __VA_ARGS__); out("\n"); exit(1); } while (0)
#define SETUP_FAIL(...) do { out("FAIL: setup: " __VA_ARGS__); out("\n"); exit(2); } while (0)

static volatile sig_atomic_t got_term;
static void on_term(int sig) { (void)sig; got_term = 1; }

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define SEED 0x2545F4914F6CDD1DULL

static inline uint64_t next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		SETUP_FAIL("usage: big DIR SIZE_MIB");
	char *end;
	unsigned long mib = strtoul(argv[2], &end, 10);
	if (*end || mib == 0)
		SETUP_FAIL("bad SIZE_MIB \"%s\"", argv[2]);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		SETUP_FAIL("sigaction: %s", strerror(errno));
	sigset_t term, waitmask;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &waitmask);
	sigdelset(&waitmask, SIGTERM);

	size_t len = mib << 20, words = len / 8;
	/* MAP_POPULATE: prefaulting in the kernel is much cheaper than 4 KiB write faults */
	uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		SETUP_FAIL("mmap %lu MiB: %s", mib, strerror(errno));

	double t0 = now();
	uint64_t s = SEED;
	for (size_t i = 0; i < words; i++)
		mem[i] = next(&s);
	fprintf(stderr, "big: filled %lu MiB in %.3f s at %p\n", mib, now() - t0, (void *)mem);

	out("ready %d\n", (int)getpid());
	while (!got_term)
		sigsuspend(&waitmask);

	t0 = now();
	s = SEED;
	for (size_t i = 0; i < words; i++) {
		uint64_t exp = next(&s);
		if (mem[i] != exp)
			FAIL("word at offset %zu (MiB %zu, addr %p): expected 0x%016llx got 0x%016llx",
			     i * 8, (i * 8) >> 20, (void *)&mem[i], (unsigned long long)exp,
			     (unsigned long long)mem[i]);
	}
	fprintf(stderr, "big: verified in %.3f s\n", now() - t0);
	out("PASS\n");
	return 0;
}
