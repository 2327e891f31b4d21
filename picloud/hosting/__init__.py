"""The Ray shells of the actors, the host pool, the channel to front doors
and the scheduler of wake-ups: the only package that imports Ray (besides
the composition root, :mod:`picloud.server`)."""
