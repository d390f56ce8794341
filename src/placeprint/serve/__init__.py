"""HTTP API and web page: `placeprint serve`."""
