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
#include "wl.h"

#include <sys/mman.h>
#include <time.h>

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

	wl_catch_term();
	sigset_t waitmask;
	wl_block_term(&waitmask);

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
