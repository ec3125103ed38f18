pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.worker",
    "tests.fixtures.redis_server",
    "tests.fixtures.shop",
]
