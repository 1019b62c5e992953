"""Exit codes of the `archetypes` command, shared by the group and the commands."""

EXIT_USER_ERROR = 2
# The run ended short of its target: attempts or budget ran out, tasks failed, or the gates
# starved it (one reason rejected nearly all of its first attempts: generator/run.py).
EXIT_SHORT = 3
# 128 + SIGPIPE: the shell's code for a reader that went away (`archetypes plan | head`).
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130
