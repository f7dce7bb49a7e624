"""/protected: the demo's protected resource."""

from flask_jwt_extended import current_user, jwt_required

from .api import Blueprint
from .schemas import DashboardSchema, MessageSchema

blp = Blueprint("protected", __name__, url_prefix="/protected", description="Protected resources")


@blp.route("/dashboard", methods=["GET"])
@blp.doc(security=[{"bearerAuth": []}])
@blp.response(200, DashboardSchema)
@blp.alt_response(401, schema=MessageSchema, description="Missing, invalid, expired or revoked")
@jwt_required()
def dashboard():
    """Greet the user behind the access token."""
    return {"message": f"Welcome {current_user.username}, this is your dashboard"}
