"""Counter-based random draws for user-written problems (public face of the engine's streams).

Inside `Problem.sample`, draw the data of steps ``ks`` from the stream
key the engine passes in; value m of step k is a pure function of (seed, k, m),
so results never depend on how steps, seeds or grid points are batched::

    def sample(self, ops, key, ks):
        return asyncjax.rng.normals(key, ks, self.d, jnp.float32)   # (len(ks), d)
"""

from asyncjax._rng import erfinv_uniform, indices, normals, signs, uniforms, words

__all__ = ["uniforms", "normals", "signs", "indices", "erfinv_uniform", "words"]
