"""``netsched demo``: the whole extender on a bundled sample cluster, with pods coming and going."""
