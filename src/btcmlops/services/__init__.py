"""The live stack's long-running services, thin loops over the package: the market feed and the trainer.

Each has a ``step`` that does one round of work for a given moment (testable without sleeping) and a
``run`` that repeats it until told to stop. Sim time comes from the clock row in the store.
"""
