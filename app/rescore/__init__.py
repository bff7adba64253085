"""The service's background rescore of every stored customer (``/v1/rescore``)."""
