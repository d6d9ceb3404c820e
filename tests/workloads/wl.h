/*
 * wl.h -- helpers shared by the stasis test workloads (tests/workloads/NAME.c).
 *
 * The workload protocol (what tests/common/mod.rs and benches/dump_restore.rs expect):
 *   - argv[1] is a scratch directory (some workloads ignore it; some take more arguments);
 *   - after setup the workload prints one line "ready <pid>\n" and waits for SIGTERM
 *     (the checkpoint/restore happens while it waits);
 *   - on SIGTERM it verifies its state and prints "PASS\n" and exits 0, or prints
 *     "FAIL: <reason>\n" and exits 1; a setup error prints "FAIL: setup: <reason>\n"
 *     and exits 2.
 *
 * Everything here is static (inline), so a workload that does not use a helper gets no
 * warning for it. Include this first, right after `#define _GNU_SOURCE`:
 *
 *     #define _GNU_SOURCE
 *     #include "wl.h"
 */
#ifndef WL_H
#define WL_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* printf to stdout with one write(2) loop (no stdio buffer; EINTR-safe); at most 1023 bytes. */
static inline void out(const char *fmt, ...)
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

/* FAIL("fmt", ...): "FAIL: ...\n", exit 1. SETUP_FAIL: "FAIL: setup: ...\n", exit 2. */
#define FAIL(...) do { out("FAIL: " __VA_ARGS__); out("\n"); exit(1); } while (0)
#define SETUP_FAIL(...) do { out("FAIL: setup: " __VA_ARGS__); out("\n"); exit(2); } while (0)

/* Counter-based pattern (splitmix64 finaliser): word i of stream `seed`. Random access. */
static inline uint64_t pat(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL + 0x632BE59BD9B4E5ULL;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* SIGTERM ends the wait: the handler only sets got_term. */
static volatile sig_atomic_t got_term;
static inline void on_term(int sig) { (void)sig; got_term = 1; }

/* Installs on_term for SIGTERM (no SA_RESTART, so it interrupts blocking calls with EINTR). */
static inline void wl_catch_term(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		SETUP_FAIL("sigaction: %s", strerror(errno));
}

/*
 * Blocks SIGTERM and sets *waitmask to the previous mask without SIGTERM, for
 * `while (!got_term) sigsuspend(waitmask);` (no SIGTERM lost between the test and the wait).
 */
static inline void wl_block_term(sigset_t *waitmask)
{
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, waitmask);
	sigdelset(waitmask, SIGTERM);
}

#endif /* WL_H */
