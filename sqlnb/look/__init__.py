"""Looking at data inside SQLite: column profiles (:mod:`sqlnb.look.profile`) and the
aggregates behind plots (:mod:`sqlnb.look.plots`, which draws with matplotlib).

Pure functions over a Connection-like object; no IPython. This package's root imports
nothing, so ``import sqlnb`` (which exports :func:`sqlnb.look.profile.profile`) never
loads matplotlib.
"""
