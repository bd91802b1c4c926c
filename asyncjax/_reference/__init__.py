"""References the tests pin the engine against, apart from the public API.

* ``workers``: a NumPy heap event loop of M workers (the staleness and wall
  time the worker clock must reproduce);
* ``eq5``: the original eq. 5 simulator of streaming PCA, kept so that the
  engine with eq. 5 plugged in stays bit-identical to it (and as the speed
  reference of ``asyncjax bench``).
"""
