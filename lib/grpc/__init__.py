"""gRPC on grpc.aio with betterproto2 messages: codec, adapter, interceptors, server, pool."""
