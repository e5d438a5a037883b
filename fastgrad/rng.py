"""Keys for fastgrad's compiled counter-based samplers.

A compiled sampler draws element i of call c from Philox keyed by
(seed, c, i), so a sample depends neither on the thread count nor on how a
batch is split. CounterRNG hands out (seed, counter) pairs in order; its
state is two integers, saved by checkpoints.
"""


class CounterRNG:
    """Hands out (seed, counter) keys for compiled samplers, one per call."""

    __slots__ = ("seed", "counter")

    def __init__(self, seed=0, counter=0):
        seed, counter = int(seed), int(counter)
        if not 0 <= seed < 2 ** 64 or not 0 <= counter < 2 ** 64:
            raise ValueError(f"CounterRNG: seed {seed} and counter {counter} "
                             "must lie in [0, 2**64)")
        self.seed, self.counter = seed, counter

    def take(self):
        """The key for the next sampler call: (seed, counter)."""
        key = (self.seed, self.counter)
        self.counter += 1
        return key

    def state_dict(self):
        return {"seed": self.seed, "counter": self.counter}

    def load_state_dict(self, state):
        self.__init__(state["seed"], state["counter"])

    def __repr__(self):
        return f"CounterRNG(seed={self.seed}, counter={self.counter})"
