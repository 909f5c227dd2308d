//! Helpers shared by the integration tests: the test ground's brokers, the Java oracle and
//! the librdkafka judge, each reached through the project's own scripts.
