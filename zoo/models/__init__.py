"""Model definitions; each module registers itself with `zoo.registry.register`."""
