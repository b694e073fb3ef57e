"""`python -m services.points`: serve PointServer on gRPC (POINTS_GRPC_PORT, 50051) and
/health, /ready, /metrics on the side port (POINTS_PORT, 9105)."""

from lib.runner import run_service
from services.points.settings import SERVICE, PointsSettings

if __name__ == "__main__":
    run_service(SERVICE, PointsSettings, "services.points.app:create_app")
