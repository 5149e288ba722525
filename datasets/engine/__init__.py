"""The query engine: parse query parameters, validate them against the columns, compile to SQL, execute.

    query = parse_rows(spec, params)            # datasets.engine.parse
    page = run_rows(spec, query)                # datasets.engine.execute

Nothing here touches Django's ORM: a dataset is described by a `DatasetSpec`.
"""
