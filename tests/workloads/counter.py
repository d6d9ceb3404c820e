# A real program for stasis: python3 holding tens of MiB and counting.
# argv[1]: scratch dir (unused). Prints "ready PID", then "count N" every 50 ms.
# On SIGTERM: checks the data against its digest and that the counter went up by one
# at every step, prints PASS or FAIL: reason.
import hashlib, os, signal, sys, time

MIB = 40
data = bytearray(os.urandom(MIB << 20))
digest = hashlib.sha256(data).hexdigest()
table = {i: str(i) * 3 for i in range(200000)}  # many small objects on the heap
stop = False

def on_term(signum, frame):
    global stop
    stop = True

signal.signal(signal.SIGTERM, on_term)
print(f"ready {os.getpid()}", flush=True)
count = 0
seen = []
while not stop:
    count += 1
    seen.append(count)
    print(f"count {count}", flush=True)
    time.sleep(0.05)

if hashlib.sha256(data).hexdigest() != digest:
    print("FAIL: data digest changed", flush=True)
    sys.exit(1)
if seen != list(range(1, count + 1)):
    print("FAIL: the counter skipped or restarted", flush=True)
    sys.exit(1)
if any(table[i] != str(i) * 3 for i in range(0, 200000, 997)):
    print("FAIL: heap objects changed", flush=True)
    sys.exit(1)
print(f"PASS {count}", flush=True)
