# The columnar insert loop behind Connection.to_table (issue: DataFrame export).
