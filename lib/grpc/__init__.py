"""gRPC on grpc.aio with betterproto2 messages: codec, adapter, interceptors, server, pool.

gRPC on grpc.aio with betterproto2 messages: codec, adapter, interceptors, server
lifecycle, channel pool."""
