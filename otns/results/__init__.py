"""The results contract: each test's outcome and the verdict (model), the files of every output
folder (files), what the guest left (guest), which absent features are acceptable (absence), and
a matrix's plan (plan)."""
