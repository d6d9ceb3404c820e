/*
 * restart.c -- a blocking syscall interrupted by the checkpoint must keep
 * its meaning after restore (syscall restart).
 *
 * Usage: restart DIR MODE
 *   MODE: nanosleep  loop nanosleep(1 h)
 *         sleep      sleep(3600)
 *         clock_abs  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, now + 1 h)
 *         pause      pause()
 *         sigsuspend sigsuspend() (SIGTERM blocked outside it)
 *         poll       poll(NULL, 0, 1 h)
 *         select     select(0, ..., 1 h timeout)
 *         read       blocking read(0) (a terminal in the test), echoes "got LINE"
 *         timed      nanosleep(3 s) measured with CLOCK_MONOTONIC; when it
 *                    returns normally (elapsed must be >= 3 s) prints
 *                    "slept\n", then waits for SIGTERM in pause(); SIGTERM
 *                    before "slept" is a FAIL.
 * The SIGTERM handler is installed WITHOUT SA_RESTART. In every mode a
 * return with EINTR (or an early return) while the SIGTERM flag is not set
 * is "FAIL: spurious EINTR in MODE" / "FAIL: early return in MODE"; that is
 * what a restore that breaks syscall restart produces. Also verifies a
 * 4 KiB stack canary in main's frame and a memory counter (1000000 setup
 * increments + one per wait call).
 *
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o restart restart.c
 */
#define _GNU_SOURCE
#include "wl.h"

#include <poll.h>
#include <sys/select.h>
#include <time.h>

static volatile uint64_t counter;
static uint64_t lines_read; /* read mode: wait calls that returned data */
static const char *mode;

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define HOUR 3600

/* Counts one wait call; FAILs on EINTR / early return without SIGTERM. */
static void judge(int interrupted, int early, const char *what)
{
	counter++;
	if (interrupted && !got_term)
		FAIL("spurious EINTR in %s (%s returned EINTR without SIGTERM)", mode, what);
	if (early && !got_term)
		FAIL("early return in %s (%s returned before its timeout without SIGTERM)", mode, what);
}

static void wait_pause(void)
{
	while (!got_term) {
		int r = pause();
		judge(r == -1 && errno == EINTR, r != -1, "pause");
	}
}

int main(int argc, char **argv)
{
	if (argc < 3)
		SETUP_FAIL("usage: restart DIR MODE");
	mode = argv[2];
	static const char *const modes[] = { "nanosleep", "sleep", "clock_abs", "pause", "sigsuspend",
					     "poll", "select", "timed", "read", NULL };
	int m = -1;
	for (int i = 0; modes[i]; i++)
		if (!strcmp(mode, modes[i]))
			m = i;
	if (m < 0)
		SETUP_FAIL("unknown mode \"%s\"", mode);

	wl_catch_term(); /* no SA_RESTART: SIGTERM must interrupt with EINTR */

	volatile uint64_t canary[512];
	for (int i = 0; i < 512; i++)
		canary[i] = pat(31, i);
	for (int i = 0; i < 1000000; i++)
		counter++;

	sigset_t waitmask;
	if (!strcmp(mode, "sigsuspend"))
		wl_block_term(&waitmask);

	out("ready %d\n", (int)getpid());

	if (!strcmp(mode, "nanosleep")) {
		while (!got_term) {
			struct timespec ts = { HOUR, 0 }, rem;
			int r = nanosleep(&ts, &rem);
			judge(r == -1 && errno == EINTR, r == 0, "nanosleep");
		}
	} else if (!strcmp(mode, "sleep")) {
		while (!got_term) {
			unsigned r = sleep(HOUR);
			/* sleep() returns the unslept seconds when interrupted */
			judge(r != 0, 0, "sleep");
			if (!got_term)
				FAIL("early return in sleep (slept the whole hour?)");
		}
	} else if (!strcmp(mode, "clock_abs")) {
		struct timespec dl;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += HOUR;
		while (!got_term) {
			int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
			if (r != 0 && r != EINTR)
				FAIL("clock_nanosleep: %s", strerror(r));
			judge(r == EINTR, r == 0, "clock_nanosleep");
		}
	} else if (!strcmp(mode, "pause")) {
		wait_pause();
	} else if (!strcmp(mode, "sigsuspend")) {
		while (!got_term) {
			int r = sigsuspend(&waitmask);
			judge(r == -1 && errno == EINTR, r != -1, "sigsuspend");
		}
	} else if (!strcmp(mode, "poll")) {
		while (!got_term) {
			int r = poll(NULL, 0, HOUR * 1000);
			if (r < 0 && errno != EINTR)
				FAIL("poll: %s", strerror(errno));
			judge(r < 0 && errno == EINTR, r >= 0, "poll");
		}
	} else if (!strcmp(mode, "select")) {
		while (!got_term) {
			struct timeval tv = { HOUR, 0 };
			int r = select(0, NULL, NULL, NULL, &tv);
			if (r < 0 && errno != EINTR)
				FAIL("select: %s", strerror(errno));
			judge(r < 0 && errno == EINTR, r >= 0, "select");
		}
	} else if (!strcmp(mode, "read")) {
		/* A blocking read on stdin (a terminal in the test): each line read is echoed to
		 * stdout as "got LINE"; EINTR without SIGTERM is a failure. */
		char buf[256];
		while (!got_term) {
			ssize_t r = read(0, buf, sizeof buf - 1);
			if (r < 0 && errno != EINTR)
				FAIL("read: %s", strerror(errno));
			judge(r < 0 && errno == EINTR, r == 0, "read");
			if (r > 0) {
				buf[r] = 0;
				buf[strcspn(buf, "\n")] = 0;
				out("got %s\n", buf);
				lines_read++;
			}
		}
	} else { /* timed */
		double t0 = now_mono();
		struct timespec ts = { 3, 0 }, rem;
		int r = nanosleep(&ts, &rem);
		double el = now_mono() - t0;
		counter++;
		if (r == -1 && errno == EINTR && !got_term)
			FAIL("spurious EINTR in timed (nanosleep(3 s) interrupted after %.3f s without SIGTERM)", el);
		if (got_term)
			FAIL("SIGTERM arrived during the timed 3 s sleep (after %.3f s), before \"slept\"", el);
		if (r != 0)
			FAIL("timed: nanosleep returned %d: %s", r, strerror(errno));
		if (el < 3.0)
			FAIL("timed: nanosleep(3 s) returned after only %.6f s", el);
		fprintf(stderr, "restart timed: slept %.3f s\n", el);
		out("slept\n");
		wait_pause();
	}

	for (int i = 0; i < 512; i++)
		if (canary[i] != pat(31, i))
			FAIL("stack canary word %d (addr %p): expected 0x%016llx got 0x%016llx", i,
			     (void *)&canary[i], (unsigned long long)pat(31, i), (unsigned long long)canary[i]);
	/* 1000000 setup increments + exactly one per wait call (the SIGTERM-ended one) */
	uint64_t want = 1000000 + (m == 7 ? 2 : 1) + lines_read;
	if (counter != want)
		FAIL("counter: expected %llu got %llu", (unsigned long long)want, (unsigned long long)counter);
	out("PASS\n");
	return 0;
}
