"""Tests of ``kubernetes_access``: the credential rule, the error mapping, the backoff."""
