"""Beyond one machine: describe and encode on a Dask cluster (:mod:`.runner`)."""
