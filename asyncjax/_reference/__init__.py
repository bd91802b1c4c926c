"""NumPy oracles the tests compare against: plain, slow, independent of the engine."""
