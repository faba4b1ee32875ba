"""The RPC's documentation: the OpenAPI 3.1 document (`/openapi.json`) with a schema for
every request, answer, error and event, and the page of transaction types
(`/docs/transactions`), both generated from the definitions the handlers use."""

from node.server.openapi.document import openapi_document
from node.server.openapi.endpoints import PUBLIC_PATHS
from node.server.openapi.txpage import tx_types_page

__all__ = ["PUBLIC_PATHS", "openapi_document", "tx_types_page"]
