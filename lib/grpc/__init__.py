"""gRPC on grpc.aio with betterproto2 messages: server adapter, interceptors, channel pool."""
