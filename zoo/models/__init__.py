"""Model definitions: the registry imports every module and package here (`__main__` aside);
a model's registers itself with `zoo.registry.register`, a shared helper registers nothing."""
