"""The lake's Glue catalog: database and tables, partitioned by day with partition projection."""

from __future__ import annotations

import pyarrow as pa
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from processing.lake import glue_columns
from processing.schema import LOAD_SCHEMA, PARTITION_COLUMN, QUARANTINE_SCHEMA

# Partition projection: Athena and Glue jobs see every day from here on without a crawler
# and without registering partitions.
PROJECTION_START = "2024-01-01"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


class LakeCatalog(Construct):
    """Glue database with the tables raw_loads, curated_loads and quarantine."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        database_name: str,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        quarantine_bucket: s3.IBucket,
        account: str,
    ) -> None:
        super().__init__(scope, id_)
        self.database = glue.CfnDatabase(
            self, "Database", catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description="Freight load data: raw, curated, quarantine"
            ),
        )  # fmt: skip
        self.tables = {
            name: self._table(name, bucket, prefix, schema, account)
            for name, bucket, prefix, schema in (
                ("raw_loads", raw_bucket, "raw/loads", LOAD_SCHEMA),
                ("curated_loads", curated_bucket, "curated/loads", LOAD_SCHEMA),
                ("quarantine", quarantine_bucket, "quarantine/loads", QUARANTINE_SCHEMA),
            )
        }

    def _table(
        self, name: str, bucket: s3.IBucket, prefix: str, schema: pa.Schema, account: str
    ) -> glue.CfnTable:
        location = f"s3://{bucket.bucket_name}/{prefix}/"
        columns = [
            glue.CfnTable.ColumnProperty(name=column, type=kind)
            for column, kind in glue_columns(schema).items()
        ]
        # The Ref to the database orders the table after it.
        return glue.CfnTable(
            self,
            name,
            catalog_id=account,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                table_type="EXTERNAL_TABLE",
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_COLUMN, type="string")],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    f"projection.{PARTITION_COLUMN}.type": "date",
                    f"projection.{PARTITION_COLUMN}.format": "yyyy-MM-dd",
                    f"projection.{PARTITION_COLUMN}.range": f"{PROJECTION_START},NOW",
                    f"projection.{PARTITION_COLUMN}.interval": "1",
                    f"projection.{PARTITION_COLUMN}.interval.unit": "DAYS",
                    "storage.location.template": f"{location}{PARTITION_COLUMN}=${{dt}}/",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=columns,
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=PARQUET_SERDE),
                ),
            ),
        )
