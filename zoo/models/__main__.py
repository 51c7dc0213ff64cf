"""`python -m zoo.models`: the registry as a table (name, task, default data, inputs,
parameters)."""
import os

from zoo import environment, registry
from zoo.config import load_config


def table() -> str:
    """The registry table in Markdown; `sample` data is shipped in the package."""
    rows = [registry.describe(name) for name in registry.names()]
    lines = ["| model | task | default data | inputs | parameters | description |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['task']} | `{load_config(r['name']).data.dataset}` | "
              f"`{r['inputs']}` | {r['params']:,} | {r['description']} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    environment.use_cli_settings()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(table())
