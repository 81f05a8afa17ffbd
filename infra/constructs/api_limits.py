"""The API's size bound on a task's stored params, and the budget it comes from (no CDK import: the workflow,
the OpenAPI generator and the tests read it cheaply).

DynamoDB's item limit is 400 KB, attribute names and values counted in UTF-8 bytes (409,600 bytes; moto refuses
above 405,000, a little stricter). After the submission an item can gain at most:

- a failure's ``cause``, stored by the workflow as Step Functions gives it: up to 32,768 characters, each at most
  4 bytes in UTF-8 (:data:`STEP_FUNCTIONS_MAX_CAUSE_BYTES`);
- everything else (:data:`LATER_ATTRIBUTES_RESERVE_BYTES`): the error name (256 characters), executionArn,
  startedAt/updatedAt/finishedAt, attempt, progress, resultLocation, paramsLocation, cancelledAt, and the names of
  all attributes, next to what PutItem stored besides params (taskId, userId, type, status, idempotencyKey;
  an Idempotency-Key is bounded by DynamoDB's 2,048-byte partition key limit on the id derived from it).

So a submission whose params could take more than :data:`MAX_STORED_PARAMS_BYTES` is refused at the edge with a
413, and every later write on an item stays under the limit by construction (docs/DECISIONS.md "Item size").
"""

from __future__ import annotations

DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024
MOTO_ITEM_LIMIT_BYTES = 405_000
STEP_FUNCTIONS_MAX_ERROR_CHARS = 256
STEP_FUNCTIONS_MAX_CAUSE_CHARS = 32_768
STEP_FUNCTIONS_MAX_CAUSE_BYTES = STEP_FUNCTIONS_MAX_CAUSE_CHARS * 4
LATER_ATTRIBUTES_RESERVE_BYTES = 16_384
MAX_STORED_PARAMS_BYTES = 256_000

assert (
    MAX_STORED_PARAMS_BYTES + STEP_FUNCTIONS_MAX_CAUSE_BYTES + LATER_ATTRIBUTES_RESERVE_BYTES
    <= MOTO_ITEM_LIMIT_BYTES
    <= DYNAMODB_ITEM_LIMIT_BYTES
)
