"""One module per phase kind; `xstilts.phases.run.run_phase` is the container entrypoint's body."""
