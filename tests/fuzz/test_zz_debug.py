import re
import pytest
from hypothesis import HealthCheck, given, settings
from tests.fuzz.test_openapi_fuzz import gateway_schema  # noqa
from schemathesis import GenerationMode

@pytest.mark.parametrize("operation_id", ["list_sales_rows", "aggregate_sales"])
def test_debug(gateway_schema, operation_id):
    op = gateway_schema.find_operation_by_id(operation_id)
    out = set()
    @given(case=op.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        r = case.call(timeout=10)
        if r.status_code == 400:
            m = r.json()["error"]["message"]
            if re.search(r"for (revenue|unit_price)(__lte?|__ne|__gte?)?:|for units__in|for order_date__in|for order_id__(ne|gte)", m):
                out.add((m[:150], r.request.url[-200:]))
    fuzz()
    for x in list(out)[:12]: print(x)
