/*
 * aspace_change.c -- an address space that changes while it is being dumped.
 *
 * Usage: aspace_change DIR   (DIR is unused)
 *
 * The process starts a second process that shares its memory (clone with CLONE_VM, not a
 * thread) and keeps mapping new pages at new addresses, unmapping them all every 20000, so
 * /proc/PID/maps is never the same twice. A dump must refuse it cleanly (the other process
 * could change the memory while it is copied); afterwards the process must be as it was. On
 * SIGTERM: stops the mapper, checks a 1 MiB pattern, prints PASS or FAIL: reason.
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 */
#define _GNU_SOURCE
#include "wl.h"
#include <sys/prctl.h>

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define BASE 0x300000000000UL
#define PAGE 4096UL
#define MAX_MAPS 20000

static volatile int stop_mapper;

static int mapper(void *arg)
{
	(void)arg;
	/* Never outlive the main process (a test that kills it must not leave us spinning). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0);
	while (!stop_mapper) {
		for (unsigned long i = 0; i < MAX_MAPS && !stop_mapper; i++)
			mmap((void *)(BASE + i * 2 * PAGE), PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		munmap((void *)BASE, MAX_MAPS * 2 * PAGE);
	}
	return 0;
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	size_t len = 1 << 20;
	unsigned char *data = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 31 + 7);
	size_t stack_len = 256 << 10;
	char *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pid_t child = clone(mapper, stack + stack_len, CLONE_VM | SIGCHLD, NULL);
	if (child < 0) {
		printf("FAIL: setup: clone: %s\n", strerror(errno));
		return 2;
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	while (!got_term)
		pause();
	stop_mapper = 1;
	kill(child, SIGKILL); /* and if it did not see the flag, this stops it */
	int st;
	if (waitpid(child, &st, 0) != child) {
		printf("FAIL: waitpid of the mapper: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < len; i++)
		if (data[i] != (unsigned char)(i * 31 + 7)) {
			printf("FAIL: byte %zu changed\n", i);
			return 1;
		}
	printf("PASS\n");
	return 0;
}
