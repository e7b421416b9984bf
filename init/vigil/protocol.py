"""The control protocol's words, shared by the server (control.py) and the client (client.py,
ctl.py): light on purpose, since every vigilctl run imports it.

Protocol version 1 (also in the README):
  request  one line of at most MAX_REQUEST bytes: "1 VERB [ARG ...]\\n", words separated
           by spaces; the leading 1 is the protocol version.
  reply    one line of JSON: {"ok": true, "result": ...}
           or {"ok": false, "error": "why", "code": N}, N being vigilctl's exit status
           (1 error, 2 usage, 3 not running, 4 no such unit).
  One request per connection; the server closes it after the reply.
"""

PROTOCOL = 1
MAX_REQUEST = 4096

# Every verb of the protocol: (fewest arguments, most (None: any), needs root). The server
# checks both before a handler runs (SO_PEERCRED gives the uid); vigilctl checks the counts
# before it connects. What each verb does is in vigil.verbs.
VERBS = {
    "ping": (0, 0, False), "version": (0, 0, False), "list": (0, 0, False),
    "status": (0, None, False), "logs": (1, 1, False), "dump": (0, 0, False),
    "analyze": (0, 0, False), "tree": (0, 0, False),
    "start": (1, None, True), "stop": (1, None, True), "restart": (1, None, True),
    "reload": (0, None, True), "poweroff": (0, 1, True), "reboot": (0, 1, True),
    "halt": (0, 1, True), "reexec": (0, 0, True), "schedule": (3, None, True),
    "cancel": (0, 0, True), "rescue": (0, 0, True), "default": (0, 0, True),
}


def format_request(verb: str, args: list[str]) -> bytes:
    return (" ".join([str(PROTOCOL), verb, *args]) + "\n").encode()
