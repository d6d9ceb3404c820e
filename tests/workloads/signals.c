/*
 * signals.c -- signal state workload for stasis.
 *
 * Usage: signals DIR      (DIR is unused)
 *
 * Sets up:
 *  - SIGUSR1: SA_SIGINFO|SA_RESTART, sa_mask {SIGUSR2}
 *  - SIGUSR2: plain handler, SA_NODEFER
 *  - SIGRTMIN+2: SA_SIGINFO
 *  - SIGALRM: SA_ONSTACK, plain handler
 *  - SIGPIPE: SIG_IGN; SIGHUP: SIG_DFL; SIGTERM: flag-setting handler
 *  - a 64 KiB malloc'd sigaltstack filled with a pattern
 *  - blocked: SIGUSR1, SIGUSR2, SIGRTMIN+2 (and SIGTERM outside sigsuspend)
 *  - pending: raise(SIGUSR1) (thread-directed, SI_TKILL) and
 *    sigqueue(SIGRTMIN+2) twice with values 0x1234 then 0x5678
 * and saves every kernel sigaction (rt_sigaction: handler, flags incl.
 * SA_RESTORER, restorer, mask) for signals 1..64 right after setup.
 *
 * Waits in sigsuspend({USR1,USR2,RTMIN+2}); on SIGTERM verifies:
 *  - all 64 kernel sigactions equal the saved ones;
 *  - the blocked mask is exactly {USR1, USR2, RTMIN+2, TERM} (i.e. the
 *    mask from before sigsuspend was put back);
 *  - rt_sigpending is exactly {USR1, RTMIN+2};
 *  - sigaltstack (ss_sp, ss_size, ss_flags) unchanged, pattern intact;
 *  - no handler ran before the unblock;
 *  - after unblocking: USR1 handler ran once (SI_TKILL from our pid, with
 *    SIGUSR1 and SIGUSR2 blocked inside it), the RT handler ran twice with
 *    si_value 0x1234 then 0x5678, si_code SI_QUEUE, si_pid our pid;
 *  - raise(SIGUSR2): handler runs with SIGUSR2 not blocked (SA_NODEFER);
 *  - raise(SIGALRM): handler runs on the alternate stack (a local's address
 *    is inside it, SS_ONSTACK reported);
 *  - writing to a pipe without reader gives EPIPE (SIGPIPE ignored).
 * Notes on stderr (not failures) whether the pending signals are still
 * split as thread-private (SigPnd: USR1) / shared (ShdPnd: RTMIN+2).
 *
 * Protocol: "ready <pid>\n" then SIGTERM -> "PASS\n" (0) or "FAIL: ...\n" (1).
 * Build: gcc -O1 -g -o signals signals.c
 */
#define _GNU_SOURCE
#include "wl.h"

#include <fcntl.h>
#include <sys/syscall.h>

/* kernel's struct sigaction for rt_sigaction on x86-64 */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static int k_sigaction(int sig, struct ksigaction *old)
{
	return (int)syscall(SYS_rt_sigaction, sig, NULL, old, 8);
}

static uint64_t k_blocked(void)
{
	uint64_t m = 0;
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8))
		FAIL("rt_sigprocmask: %s", strerror(errno));
	return m;
}

static uint64_t k_pending(void)
{
	uint64_t m = 0;
	if (syscall(SYS_rt_sigpending, &m, 8))
		FAIL("rt_sigpending: %s", strerror(errno));
	return m;
}

#define BIT(s) (1ULL << ((s) - 1))
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

static volatile int usr1_count, usr1_code, usr1_pid, usr1_saw_usr1_blocked, usr1_saw_usr2_blocked;
static volatile int usr2_count, usr2_saw_usr2_blocked;
static volatile int rt_count, rt_code[4], rt_pid[4];
static volatile intptr_t rt_val[4];
static volatile int alrm_count, alrm_onstack_flag;
static volatile uintptr_t alrm_local_addr;

static void h_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	usr1_saw_usr1_blocked = !!(m & BIT(SIGUSR1));
	usr1_saw_usr2_blocked = !!(m & BIT(SIGUSR2));
	usr1_code = si->si_code;
	usr1_pid = si->si_pid;
	usr1_count++;
}

static void h_usr2(int sig)
{
	(void)sig;
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	usr2_saw_usr2_blocked = !!(m & BIT(SIGUSR2));
	usr2_count++;
}

static void h_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	int i = rt_count;
	if (i < 4) {
		rt_val[i] = (intptr_t)si->si_value.sival_ptr;
		rt_code[i] = si->si_code;
		rt_pid[i] = si->si_pid;
	}
	rt_count = i + 1;
}

static void h_alrm(int sig)
{
	(void)sig;
	volatile int local = 0;
	alrm_local_addr = (uintptr_t)&local;
	stack_t ss;
	if (sigaltstack(NULL, &ss) == 0)
		alrm_onstack_flag = !!(ss.ss_flags & SS_ONSTACK);
	alrm_count++;
}

#define ALT_SIZE (64 * 1024)
static unsigned char *alt_mem;

static void install(int sig, void (*h)(int), void (*sa)(int, siginfo_t *, void *), int flags, const int *maskv)
{
	struct sigaction act;
	memset(&act, 0, sizeof act);
	if (sa)
		act.sa_sigaction = sa;
	else
		act.sa_handler = h;
	act.sa_flags = flags;
	sigemptyset(&act.sa_mask);
	for (; maskv && *maskv; maskv++)
		sigaddset(&act.sa_mask, *maskv);
	if (sigaction(sig, &act, NULL))
		SETUP_FAIL("sigaction(%d): %s", sig, strerror(errno));
}

static struct ksigaction saved[65];

/* Notes (stderr) whether SigPnd / ShdPnd split is preserved. */
static void note_pending_split(const char *when, uint64_t want_thr, uint64_t want_shd)
{
	char buf[8192];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	unsigned long long thr = 0, shd = 0;
	char *p = strstr(buf, "\nSigPnd:");
	if (p)
		thr = strtoull(p + 8, NULL, 16);
	p = strstr(buf, "\nShdPnd:");
	if (p)
		shd = strtoull(p + 8, NULL, 16);
	if (thr != want_thr || shd != want_shd)
		fprintf(stderr, "note (%s): SigPnd=%016llx ShdPnd=%016llx, at setup thread=%016llx shared=%016llx\n",
			when, thr, shd, (unsigned long long)want_thr, (unsigned long long)want_shd);
}

int main(void)
{
	const int rt2 = SIGRTMIN + 2;
	pid_t me = getpid();

	/* altstack */
	alt_mem = malloc(ALT_SIZE);
	if (!alt_mem)
		SETUP_FAIL("malloc altstack");
	for (size_t i = 0; i < ALT_SIZE / 8; i++)
		((uint64_t *)alt_mem)[i] = pat(77, i);
	stack_t ss = { .ss_sp = alt_mem, .ss_size = ALT_SIZE, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL))
		SETUP_FAIL("sigaltstack: %s", strerror(errno));

	/* handlers */
	const int m_usr2[] = { SIGUSR2, 0 };
	install(SIGUSR1, NULL, h_usr1, SA_SIGINFO | SA_RESTART, m_usr2);
	install(SIGUSR2, h_usr2, NULL, SA_NODEFER, NULL);
	install(rt2, NULL, h_rt, SA_SIGINFO, NULL);
	install(SIGALRM, h_alrm, NULL, SA_ONSTACK, NULL);
	install(SIGPIPE, SIG_IGN, NULL, 0, NULL);
	install(SIGHUP, SIG_DFL, NULL, 0, NULL);
	install(SIGTERM, on_term, NULL, 0, NULL);

	/* blocked mask */
	sigset_t blk, waitmask;
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR1);
	sigaddset(&blk, SIGUSR2);
	sigaddset(&blk, rt2);
	waitmask = blk;
	sigaddset(&blk, SIGTERM);
	if (sigprocmask(SIG_SETMASK, &blk, NULL))
		SETUP_FAIL("sigprocmask: %s", strerror(errno));

	/* pending */
	if (raise(SIGUSR1))
		SETUP_FAIL("raise SIGUSR1: %s", strerror(errno));
	if (sigqueue(me, rt2, (union sigval){ .sival_ptr = (void *)0x1234 }))
		SETUP_FAIL("sigqueue 0x1234: %s", strerror(errno));
	if (sigqueue(me, rt2, (union sigval){ .sival_ptr = (void *)0x5678 }))
		SETUP_FAIL("sigqueue 0x5678: %s", strerror(errno));

	/* save state */
	for (int s = 1; s <= 64; s++)
		if (k_sigaction(s, &saved[s]))
			SETUP_FAIL("rt_sigaction(%d) query: %s", s, strerror(errno));
	const uint64_t want_blocked = BIT(SIGUSR1) | BIT(SIGUSR2) | BIT(rt2) | BIT(SIGTERM);
	const uint64_t want_pending = BIT(SIGUSR1) | BIT(rt2);
	uint64_t blocked0 = k_blocked(), pending0 = k_pending();
	if (blocked0 != want_blocked)
		SETUP_FAIL("blocked mask 0x%llx, expected 0x%llx", (unsigned long long)blocked0,
			   (unsigned long long)want_blocked);
	if (pending0 != want_pending)
		SETUP_FAIL("pending 0x%llx, expected 0x%llx", (unsigned long long)pending0,
			   (unsigned long long)want_pending);
	if (!(saved[SIGUSR1].flags & SA_RESTORER) || saved[SIGUSR1].restorer == NULL)
		SETUP_FAIL("libc did not set SA_RESTORER (flags 0x%lx)", saved[SIGUSR1].flags);
	note_pending_split("setup", BIT(SIGUSR1), BIT(rt2));

	out("ready %d\n", (int)me);
	while (!got_term)
		sigsuspend(&waitmask);

	/* ---- verify ---- */
	uint64_t b = k_blocked();
	if (b != want_blocked)
		FAIL("blocked mask: expected 0x%016llx got 0x%016llx", (unsigned long long)want_blocked,
		     (unsigned long long)b);

	for (int s = 1; s <= 64; s++) {
		struct ksigaction k;
		if (k_sigaction(s, &k))
			FAIL("rt_sigaction(%d) query: %s", s, strerror(errno));
		if (k.handler != saved[s].handler)
			FAIL("signal %d (%s): handler expected %p got %p", s, strsignal(s), saved[s].handler, k.handler);
		if (k.flags != saved[s].flags)
			FAIL("signal %d (%s): sa_flags expected 0x%lx got 0x%lx", s, strsignal(s), saved[s].flags, k.flags);
		if (k.restorer != saved[s].restorer)
			FAIL("signal %d (%s): sa_restorer expected %p got %p", s, strsignal(s), saved[s].restorer, k.restorer);
		if (k.mask != saved[s].mask)
			FAIL("signal %d (%s): sa_mask expected 0x%016llx got 0x%016llx", s, strsignal(s),
			     (unsigned long long)saved[s].mask, (unsigned long long)k.mask);
	}

	uint64_t p = k_pending();
	if (p != want_pending)
		FAIL("pending signals: expected 0x%016llx (SIGUSR1, SIGRTMIN+2) got 0x%016llx",
		     (unsigned long long)want_pending, (unsigned long long)p);
	note_pending_split("restore", BIT(SIGUSR1), BIT(rt2));

	stack_t cur;
	if (sigaltstack(NULL, &cur))
		FAIL("sigaltstack query: %s", strerror(errno));
	if (cur.ss_sp != alt_mem || cur.ss_size != ALT_SIZE || cur.ss_flags != 0)
		FAIL("sigaltstack: expected sp=%p size=%d flags=0, got sp=%p size=%zu flags=0x%x",
		     (void *)alt_mem, ALT_SIZE, cur.ss_sp, cur.ss_size, cur.ss_flags);
	for (size_t i = 0; i < ALT_SIZE / 8; i++) {
		uint64_t got = ((volatile uint64_t *)alt_mem)[i];
		if (got != pat(77, i))
			FAIL("altstack memory at offset %zu: expected 0x%016llx got 0x%016llx", i * 8,
			     (unsigned long long)pat(77, i), (unsigned long long)got);
	}

	if (usr1_count || usr2_count || rt_count || alrm_count)
		FAIL("handlers ran before unblock: usr1=%d usr2=%d rt=%d alrm=%d",
		     usr1_count, usr2_count, rt_count, alrm_count);

	if (sigprocmask(SIG_UNBLOCK, &waitmask, NULL))
		FAIL("sigprocmask unblock: %s", strerror(errno));

	if (usr1_count != 1)
		FAIL("SIGUSR1 handler ran %d times, expected 1", usr1_count);
	if (usr1_code != SI_TKILL || usr1_pid != me)
		FAIL("SIGUSR1 siginfo: expected si_code SI_TKILL (%d) si_pid %d, got si_code %d si_pid %d",
		     SI_TKILL, (int)me, usr1_code, usr1_pid);
	if (!usr1_saw_usr1_blocked || !usr1_saw_usr2_blocked)
		FAIL("inside SIGUSR1 handler: SIGUSR1 blocked=%d SIGUSR2 blocked=%d, expected both 1 (sa_mask)",
		     usr1_saw_usr1_blocked, usr1_saw_usr2_blocked);
	if (rt_count != 2)
		FAIL("SIGRTMIN+2 handler ran %d times, expected 2", rt_count);
	for (int i = 0; i < 2; i++) {
		intptr_t want = i == 0 ? 0x1234 : 0x5678;
		if (rt_val[i] != want || rt_code[i] != SI_QUEUE || rt_pid[i] != me)
			FAIL("SIGRTMIN+2 delivery #%d: expected value 0x%lx si_code SI_QUEUE (%d) si_pid %d, "
			     "got value 0x%lx si_code %d si_pid %d", i + 1, (long)want, SI_QUEUE, (int)me,
			     (long)rt_val[i], rt_code[i], rt_pid[i]);
	}
	p = k_pending();
	if (p != 0)
		FAIL("pending after unblock: expected 0 got 0x%016llx", (unsigned long long)p);

	raise(SIGUSR2);
	if (usr2_count != 1)
		FAIL("SIGUSR2 handler ran %d times after raise, expected 1", usr2_count);
	if (usr2_saw_usr2_blocked)
		FAIL("inside SIGUSR2 handler SIGUSR2 was blocked (SA_NODEFER lost)");

	raise(SIGALRM);
	if (alrm_count != 1)
		FAIL("SIGALRM handler ran %d times, expected 1", alrm_count);
	if (alrm_local_addr < (uintptr_t)alt_mem || alrm_local_addr >= (uintptr_t)alt_mem + ALT_SIZE)
		FAIL("SIGALRM handler not on altstack: local at 0x%lx, altstack [%p, %p)",
		     (unsigned long)alrm_local_addr, (void *)alt_mem, (void *)(alt_mem + ALT_SIZE));
	if (!alrm_onstack_flag)
		FAIL("SIGALRM handler: sigaltstack did not report SS_ONSTACK");

	int pfd[2];
	if (pipe(pfd))
		FAIL("pipe: %s", strerror(errno));
	close(pfd[0]);
	errno = 0;
	ssize_t w = write(pfd[1], "x", 1);
	if (w != -1 || errno != EPIPE)
		FAIL("write to readerless pipe: expected -1/EPIPE got %zd/%s", w, strerror(errno));
	close(pfd[1]);

	out("PASS\n");
	return 0;
}
