pgrepProgramName=orders
startCmd=/opt/orders/bin/orders
case "$HOSTNAME" in
    *.dc1.*) heartBeatDir=/mnt/dc1/heartbeat ;;
    *.dc2.*) heartBeatDir=/mnt/dc2/heartbeat ;;
    *)       heartBeatDir=/mnt/heartbeat ;;
esac
