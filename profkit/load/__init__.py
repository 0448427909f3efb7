"""``profkit load``: closed- and open-loop load tests of an HTTP endpoint, measured exactly.

Locust (which patches the standard library with gevent on import) runs only in child processes started as
``python -m profkit.load.worker``; this package's other modules never import it, nor torch.
"""
