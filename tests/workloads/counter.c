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

static inline uint64_t pat(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL + 0x632BE59BD9B4E5ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static volatile sig_atomic_t got_term;
static void on_term(int sig) { (void)sig; got_term = 1; }

#define MEM_LEN (32UL << 20)

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		SETUP_FAIL("sigaction: %s", strerror(errno));

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
