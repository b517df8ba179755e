"""A slow SMTP sink for bench/drain.py: aiosmtpd (Debian's python3-aiosmtpd), a mail
server written in Python, as small mail setups run. Prints `mesg=N` after each mail.

    /usr/bin/python3 bench/aiosmtpd_sink.py PORT
"""
import sys
import time

from aiosmtpd.controller import Controller


class Counting:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        sys.stdout.write(f"mesg={self.count}\n")
        sys.stdout.flush()
        return "250 queued"


def main():
    port = int(sys.argv[1])
    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
