"""The file formats a configuration space exports to (kept apart from the exporters so the
command line can list them without importing ConfigSpace and Optuna)."""

FORMATS = ("configspace-json", "configspace-yaml", "pcs", "irace", "irace4", "optuna")
