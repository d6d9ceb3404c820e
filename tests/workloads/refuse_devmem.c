/*
 * refuse_devmem.c -- state stasis must refuse to checkpoint: a VM_IO /
 * VM_PFNMAP mapping of /dev/mem (physical page 0, 4096 bytes, MAP_SHARED,
 * PROT_READ).
 *
 * Usage: refuse_devmem DIR     (DIR is unused)
 *
 * If /dev/mem cannot be opened or mapped (e.g. kernel without
 * CONFIG_DEVMEM, no /dev/mem node, lockdown), prints
 * "FAIL: setup: cannot map /dev/mem: <errno>" and exits 2 before "ready":
 * the harness should treat exit 2 as "skip".
 * Otherwise prints the mapping's smaps VmFlags on stderr (expects "io" or
 * "pf"), snapshots its 4096 bytes, prints "ready <pid>\n", and on SIGTERM
 * verifies the mapping is still at the same address ("r--s" /dev/mem in
 * /proc/self/maps) and a 1 MiB anon pattern; the /dev/mem bytes are
 * compared to the snapshot but a difference is only a note on stderr
 * (physical memory may legitimately change).
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o refuse_devmem refuse_devmem.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* overridable only to exercise the success path on machines without /dev/mem */
#ifndef DEVMEM_PATH
#define DEVMEM_PATH "/dev/mem"
#endif

#define MEM_LEN (1UL << 20)
static char procbuf[1 << 20];

static void read_proc(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	procbuf[0] = 0;
	if (fd < 0)
		return;
	size_t n = 0;
	ssize_t r;
	while (n < sizeof procbuf - 1 && (r = read(fd, procbuf + n, sizeof procbuf - 1 - n)) > 0)
		n += r;
	close(fd);
	procbuf[n] = 0;
}

/* copies the maps line (or smaps VmFlags line) for the entry starting at addr */
static int find_entry(const char *path, uintptr_t addr, const char *prefix, char *dst, size_t dlen)
{
	read_proc(path);
	int in = 0;
	for (char *line = procbuf; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		unsigned long s, e;
		char dash;
		if (sscanf(line, "%lx%c%lx ", &s, &dash, &e) == 3 && dash == '-')
			in = (s == addr);
		if (in && (!prefix || !strncmp(line, prefix, strlen(prefix)))) {
			snprintf(dst, dlen, "%s", line);
			return 1;
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	(void)argc; (void)argv;
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

	int fd = open(DEVMEM_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		SETUP_FAIL("cannot map /dev/mem: %s (open)", strerror(errno));
	unsigned char *dm = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (dm == MAP_FAILED)
		SETUP_FAIL("cannot map /dev/mem: %s (mmap)", strerror(errno));
	close(fd);

	char line[512], flags[512];
	if (!find_entry("/proc/self/smaps", (uintptr_t)dm, "VmFlags:", flags, sizeof flags))
		SETUP_FAIL("no smaps entry for the /dev/mem mapping at %p", (void *)dm);
	fprintf(stderr, "refuse_devmem: mapping at %p %s\n", (void *)dm, flags);
	if (!strstr(flags, " io") && !strstr(flags, " pf"))
		fprintf(stderr, "refuse_devmem: note: VmFlags have neither io nor pf\n");

	static unsigned char snap[4096];
	memcpy(snap, dm, sizeof snap);

	uint64_t *mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		SETUP_FAIL("mmap: %s", strerror(errno));
	for (size_t i = 0; i < MEM_LEN / 8; i++)
		mem[i] = pat(6, i);

	out("ready %d\n", (int)getpid());
	while (!got_term)
		sigsuspend(&waitmask);

	if (!find_entry("/proc/self/maps", (uintptr_t)dm, NULL, line, sizeof line))
		FAIL("/dev/mem mapping at %p is gone", (void *)dm);
	if (!strstr(line, " r--s ") || !strstr(line, DEVMEM_PATH))
		FAIL("/dev/mem mapping changed: \"%s\"", line);
	if (memcmp(snap, dm, sizeof snap))
		fprintf(stderr, "refuse_devmem: note: /dev/mem page 0 content changed\n");
	for (size_t i = 0; i < MEM_LEN / 8; i++)
		if (mem[i] != pat(6, i))
			FAIL("memory word at offset %zu: expected 0x%016llx got 0x%016llx", i * 8,
			     (unsigned long long)pat(6, i), (unsigned long long)mem[i]);
	out("PASS\n");
	return 0;
}
