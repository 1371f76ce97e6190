pgrepProgramName=orders
startCmd=/opt/orders/bin/orders
site=$(echo "$HOSTNAME" | cut -d. -f2)
if [ "$site" = dc1 ]; then
  faileOverTime=20
else
  faileOverTime=40
fi
