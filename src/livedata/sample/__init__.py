"""The bundled sample data set: world countries and TPC-H lineitem, as Parquet files."""
