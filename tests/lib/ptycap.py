# ptycap.py PASSWORD COMMAND... - runs COMMAND on a pseudo-terminal and types PASSWORD at its "Password:"
# prompt (gvnccapture reads a VNC password from its terminal only); prints what it wrote, exits with its status.
import os, pty, select, sys, time
pw, args = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(args[0], args)
# It turns echo off after printing the prompt, discarding what was typed before: answer a moment
# after the prompt, and again if it still waits.
out, sent, deadline = b"", 0.0, time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if fd in r:
        try:
            d = os.read(fd, 1024)
        except OSError:
            break
        if not d:
            break
        out += d
    prompt = out.rfind(b"Password:")
    if prompt >= 0 and not out[prompt + 9:].strip(b" \r\n" + pw.encode()) and time.time() - sent > 2:
        time.sleep(0.3)
        os.write(fd, pw.encode() + b"\n")
        sent = time.time()
if time.time() >= deadline:
    os.kill(pid, 9)
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 1)
