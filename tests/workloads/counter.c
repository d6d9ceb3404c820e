/*
 * counter.c -- the "leave running" workload for stasis.
 *
 * Usage: counter DIR      (DIR is unused)
 *
 * Holds 32 MiB of private anon memory with a pattern. After "ready <pid>\n"
 * it increments a counter every 50 ms and writes "tick N\n" (N = 1, 2, 3...
 * consecutive by construction, each line one write(2)). A checkpoint that
 * leaves the process running must not disturb it: ticks just go on.
 * On SIGTERM: verifies the 32 MiB pattern and that the in-memory counter
 * equals the last tick written, then "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o counter counter.c
 */
#define _GNU_SOURCE
#include "wl.h"

#include <sys/mman.h>
#include <time.h>

#define MEM_LEN (32UL << 20)

int main(void)
{
	wl_catch_term();

	uint64_t *mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		SETUP_FAIL("mmap: %s", strerror(errno));
	for (size_t i = 0; i < MEM_LEN / 8; i++)
		mem[i] = pat(5, i);

	out("ready %d\n", (int)getpid());

	uint64_t n = 0, last_written = 0;
	while (!got_term) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL); /* EINTR (SIGTERM or otherwise) just ends this period */
		if (got_term)
			break;
		n++;
		out("tick %llu\n", (unsigned long long)n);
		last_written = n;
	}

	for (size_t i = 0; i < MEM_LEN / 8; i++)
		if (mem[i] != pat(5, i))
			FAIL("memory word at offset %zu (addr %p): expected 0x%016llx got 0x%016llx", i * 8,
			     (void *)&mem[i], (unsigned long long)pat(5, i), (unsigned long long)mem[i]);
	if (n != last_written)
		FAIL("counter %llu != last tick written %llu", (unsigned long long)n,
		     (unsigned long long)last_written);
	out("PASS\n");
	return 0;
}
