/*
 * refuse_aio.c -- state stasis must refuse to checkpoint: a Linux AIO
 * context (io_setup), which creates an "[aio]" ring mapping.
 *
 * Usage: refuse_aio DIR
 *
 * Sets up: io_setup(8) (raw syscall; checks the "/[aio]" mapping exists at
 * the context address), a 1 MiB pattern region, DIR/aio.dat (4 KiB pattern).
 * On SIGTERM (expected: the process was never checkpointed, or stasis
 * refused and left it intact) verifies: the ring header magic, an
 * IOCB_CMD_PREAD of DIR/aio.dat through the context completes with the
 * right bytes, io_destroy returns 0, the 1 MiB pattern.
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o refuse_aio refuse_aio.c
 */
#define _GNU_SOURCE
#include "wl.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define AIO_RING_MAGIC 0xa10a10a1u
struct aio_ring_hdr { unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length; };

#define MEM_LEN (1UL << 20)

static int has_aio_mapping(uintptr_t addr)
{
	static char buf[1 << 16];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t n = 0;
	ssize_t r;
	while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = 0;
	for (char *line = buf; *line;) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && s == addr && strstr(line, "[aio]")) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = 0;
			fprintf(stderr, "refuse_aio: %s\n", line);
			return 1;
		}
		char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		SETUP_FAIL("usage: refuse_aio DIR");
	wl_catch_term();
	sigset_t waitmask;
	wl_block_term(&waitmask);

	uint64_t *mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		SETUP_FAIL("mmap: %s", strerror(errno));
	for (size_t i = 0; i < MEM_LEN / 8; i++)
		mem[i] = pat(3, i);

	char path[4096];
	snprintf(path, sizeof path, "%s/aio.dat", argv[1]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		SETUP_FAIL("open %s: %s", path, strerror(errno));
	static uint64_t fbuf[512];
	for (int i = 0; i < 512; i++)
		fbuf[i] = pat(4, i);
	if (pwrite(fd, fbuf, sizeof fbuf, 0) != (ssize_t)sizeof fbuf)
		SETUP_FAIL("pwrite: %s", strerror(errno));

	aio_context_t ctx = 0;
	if (syscall(SYS_io_setup, 8, &ctx))
		SETUP_FAIL("io_setup: %s", strerror(errno));
	if (!has_aio_mapping((uintptr_t)ctx))
		SETUP_FAIL("no [aio] mapping at context address 0x%llx", (unsigned long long)ctx);

	out("ready %d\n", (int)getpid());
	while (!got_term)
		sigsuspend(&waitmask);

	struct aio_ring_hdr *ring = (struct aio_ring_hdr *)(uintptr_t)ctx;
	if (!has_aio_mapping((uintptr_t)ctx))
		FAIL("[aio] mapping at 0x%llx is gone", (unsigned long long)ctx);
	if (ring->magic != AIO_RING_MAGIC)
		FAIL("aio ring magic: expected 0x%x got 0x%x", AIO_RING_MAGIC, ring->magic);

	static uint64_t rbuf[512];
	struct iocb cb;
	memset(&cb, 0, sizeof cb);
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = fd;
	cb.aio_buf = (uintptr_t)rbuf;
	cb.aio_nbytes = sizeof rbuf;
	cb.aio_offset = 0;
	cb.aio_data = 0xfeed;
	struct iocb *cbs[1] = { &cb };
	long r = syscall(SYS_io_submit, ctx, 1, cbs);
	if (r != 1)
		FAIL("io_submit: returned %ld (%s)", r, r < 0 ? strerror(errno) : "");
	struct io_event ev;
	struct timespec to = { 5, 0 };
	r = syscall(SYS_io_getevents, ctx, 1, 1, &ev, &to);
	if (r != 1)
		FAIL("io_getevents: returned %ld (%s)", r, r < 0 ? strerror(errno) : "timeout");
	if (ev.data != 0xfeed || ev.res != (long long)sizeof rbuf)
		FAIL("aio event: data 0x%llx res %lld, expected 0xfeed %zu", (unsigned long long)ev.data,
		     (long long)ev.res, sizeof rbuf);
	for (int i = 0; i < 512; i++)
		if (rbuf[i] != pat(4, i))
			FAIL("aio read word %d: expected 0x%016llx got 0x%016llx", i,
			     (unsigned long long)pat(4, i), (unsigned long long)rbuf[i]);
	if (syscall(SYS_io_destroy, ctx))
		FAIL("io_destroy: %s", strerror(errno));

	for (size_t i = 0; i < MEM_LEN / 8; i++)
		if (mem[i] != pat(3, i))
			FAIL("memory word at offset %zu: expected 0x%016llx got 0x%016llx", i * 8,
			     (unsigned long long)pat(3, i), (unsigned long long)mem[i]);
	out("PASS\n");
	return 0;
}
